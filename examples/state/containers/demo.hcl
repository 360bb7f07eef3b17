# devhost registry entry. Comments and layout survive devhost's edits;
# run `devhost list` after editing by hand to check the file.

# carol: customer demo on Thursdays, keep until the contract is signed
# (ticket PL-4711). Set keep = false afterwards so cleanup takes it.
name         = "demo"
owner        = "carol"
environment  = "demo"
root         = "/home/carol/shop"
service_user = "s-demo"
channel      = "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz"
aliases      = ["shop"]
address      = "10.233.0.5"
state        = "running"
created      = "2026-09-01T08:00:00Z"
deployed     = "2026-09-03T11:30:00Z"
keep         = true
ssh_keys     = []
last_error   = ""
labels       = { customer = "acme", ticket = "PL-4711" }
