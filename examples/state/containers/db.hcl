# devhost registry entry. Comments and layout survive devhost's edits;
# run `devhost list` after editing by hand to check the file.
name         = "db"
owner        = "alice"
environment  = "dev"
root         = "/home/alice/shop"
service_user = "s-shop"
channel      = "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz"
aliases      = []
address      = "10.233.0.3"
state        = "running"
created      = "2026-11-20T10:00:00Z"
deployed     = "2026-11-25T09:00:00Z"
keep         = false
ssh_keys     = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK alice@laptop"]
last_error   = ""
labels       = { team = "shop" }
