"""Who a message is really from: the From mailbox parsed once, and the receiving system's verdict on it.

Pure functions over header values: no I/O, no database, no settings object.
"""
