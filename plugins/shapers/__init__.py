"""shapers"""
