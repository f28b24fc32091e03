//! ifs-net
