// Placeholder entry point; the simulator issue fills this in.
return 0;
