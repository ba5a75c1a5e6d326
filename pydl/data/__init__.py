"""pydl.data"""
