# devhost registry entry. Comments and layout survive devhost's edits;
# run `devhost list` after editing by hand to check the file.
name         = "review"
owner        = "bob"
environment  = "review"
root         = "/home/bob/shop"
service_user = "s-review"
channel      = "file:///nix/var/nix/profiles/per-user/root/channels/nixos"
aliases      = ["www"]
address      = "10.233.0.4"
state        = "stopped" # stopped by cleanup: nobody deployed it for 7 days
created      = "2026-10-30T14:12:00Z"
deployed     = "2026-11-10T16:45:00Z"
keep         = false
ssh_keys     = []
last_error   = ""
labels       = {}
