"""pydl.model_selection"""
