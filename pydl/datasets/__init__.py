"""pydl.datasets"""
