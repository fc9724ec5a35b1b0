"""scrm-hub: a real-time customer-service hub for WeCom and WeChat Official Account brands."""
__version__ = "0.1.0"
