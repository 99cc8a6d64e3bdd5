mod compatibility_tests;
mod edit_traces;
mod edit_traces_tests;
mod chorus_gc_origin;
mod chorus_xml_hook;
