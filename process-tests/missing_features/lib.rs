//! Empty: the cases are in tests/.
