"""The Faust worker: where raw records become canonical, deduplicated and routed."""
