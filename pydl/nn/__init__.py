"""pydl.nn"""
