//! kithd: a Kith node. (Built out in the node issue.)
