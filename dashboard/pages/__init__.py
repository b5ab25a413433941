"""The dashboard's pages, one module each (registered with `dash.register_page` by `create_app`)."""
