# ml-workshop student image: WebSocket messages between the student's browser and this server are
# compressed (permessage-deflate, RFC 7692) when the browser offers it, as every current browser
# does. Jupyter Server does this for its own sockets (kernels, terminals) once
# websocket_compression_options is set; jupyter-server-proxy's handler (VS Code, and every other
# proxied app) never asks Tornado for compression, so the student's link carried VS Code's
# remote-protocol traffic uncompressed (5 MB on opening it, measured: benchmarks/hub/vscode.py).
# Its handler gets the same setting here. The leg from the proxy to code-server inside the
# container is already compressed by jupyter-server-proxy's client.
c = get_config()  # noqa: F821 (defined by the Jupyter config loader)
c.ServerApp.websocket_compression_options = {}

try:
    from jupyter_server_proxy.handlers import ProxyHandler
except ImportError:  # no jupyter-server-proxy: nothing to change
    ProxyHandler = None

if ProxyHandler is not None and not getattr(ProxyHandler, "_mlw_compression", False):

    def _compression_options(self):
        return self.settings.get("websocket_compression_options")

    ProxyHandler.get_compression_options = _compression_options
    ProxyHandler._mlw_compression = True
