"""Outgoing mail: what to send (policy), how it reads (templates), and delivering it."""
