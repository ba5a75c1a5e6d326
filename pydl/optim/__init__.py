"""pydl.optim"""
