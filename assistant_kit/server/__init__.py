"""The proxy: assistant_kit's engine over HTTP, with LiteLLM's config, keys and routes.

``assistant-kit serve --config config.yaml`` (:mod:`.cli`) runs :func:`.app.build_app` under
uvicorn. Nothing here is imported by ``import assistant_kit``; the ``[proxy]`` extra
(uvicorn, pyyaml) is needed only to serve.
"""
