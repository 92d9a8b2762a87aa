"""Exports of the mix in the formats trainers read: LLaVA / Mini-Gemini json + image folder,
WebDataset tars, OBELICS-style interleaved parquet, text shards, Data-Juicer jsonl.

Image bytes are copied once per source shard into `images/` (`image_store`); every global file is
a cheap function of the mix plus those copies, written atomically and only when its content
changes (`files`), and described by a manifest with counts and checksums (`manifest`).
"""
