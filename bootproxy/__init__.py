"""The reference Boot Proxy: ProxyDHCP, TFTP and HTTP boot for machines the CP assigned."""
