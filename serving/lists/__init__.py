"""Lists by purpose in /predict's answer (`lists`): next, complementary, similar, trending, people like you,
recently viewed.

Each list is one module; `maker.ListMaker` answers the lists a batch of requests asks for. Tables that do
not depend on a request (complements, normalised product vectors, the customer index laid out for search,
each product's names, the trends table) are built at load or when a new trends table appears, never per
request; rankings that depend on one product or one basket alone (`similar`, `complementary`) are kept once
computed, in bounded caches. What each costs: benchmarks/README.md, "Lists by purpose (issue 13)".
"""
