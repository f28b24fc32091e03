#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ifs_fuzz::fetch_reply(data);
});
