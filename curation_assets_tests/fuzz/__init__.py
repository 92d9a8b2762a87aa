"""Property-based fuzzing of the shard readers: generated and damaged shards of every format.

`strategies.py` builds shards (hypothesis), `check.py` states the properties, `__main__.py` is the
long run behind `make fuzz`; `test_fuzz_readers.py` runs a fast subset with the test suite.
"""
