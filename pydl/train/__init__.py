"""pydl.train"""
