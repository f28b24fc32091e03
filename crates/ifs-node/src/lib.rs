//! ifs-node
