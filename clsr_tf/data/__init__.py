"""Data: the batch contract, the batch readers and the preparation of data sets.

Each module is one concept (README, "Data"); none of them imports Keras.
"""
