"""Adapters: the ports implemented over AWS services and HTTP."""
