"""One module per source format; each defines `open_source(format_name, paths, options) -> Source`."""
