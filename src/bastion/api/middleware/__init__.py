"""Pure-ASGI middleware: the per-request hot path, without Starlette's
``BaseHTTPMiddleware`` overhead."""
