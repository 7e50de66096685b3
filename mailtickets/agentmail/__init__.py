"""Agents working from their inbox: who is an agent, replies, private notes, `#commands` and forwards.

`commands`, `forwards` and `identity` are pure (no database, no asyncio); `store` looks agents up;
`handle` runs one authenticated agent's mail inside the pipeline's transaction.
"""
