"""ProxyDHCP for the Boot Proxy: a strict codec, a pure responder and the asyncio servers."""
