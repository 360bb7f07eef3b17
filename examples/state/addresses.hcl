# Written by devhost: the highest container address ever handed out in network.
# Addresses are reused only once every address of the pool has been used.
network    = "10.233.0.0/16"
high_water = "10.233.0.5"
