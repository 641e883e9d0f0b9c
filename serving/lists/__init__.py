"""Lists by purpose in /predict's answer (`lists`): next, complementary, similar, trending, recently viewed.

Each list is one module; `maker.ListMaker` answers the lists a batch of requests asks for. Tables that do
not depend on a request (complements, normalised product vectors, the trends table) are built at load or
when a new trends table appears, never per request.
"""
