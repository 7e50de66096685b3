"""`mailtickets demo`: the whole product on embedded servers, with generated mail."""
