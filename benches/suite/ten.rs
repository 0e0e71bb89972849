// Shared by the three suites: 500 test functions from one body, five modules
// of ten modules of ten tests (`h0::m0::t0` .. `h4::m9::t9`), so that a
// filter (`h0::`) runs 100 of them. Each suite defines `one_test!` first.

macro_rules! ten_tests {
    () => {
        one_test!(t0);
        one_test!(t1);
        one_test!(t2);
        one_test!(t3);
        one_test!(t4);
        one_test!(t5);
        one_test!(t6);
        one_test!(t7);
        one_test!(t8);
        one_test!(t9);
    };
}

macro_rules! hundred_tests {
    () => {
        mod m0 { ten_tests!(); }
        mod m1 { ten_tests!(); }
        mod m2 { ten_tests!(); }
        mod m3 { ten_tests!(); }
        mod m4 { ten_tests!(); }
        mod m5 { ten_tests!(); }
        mod m6 { ten_tests!(); }
        mod m7 { ten_tests!(); }
        mod m8 { ten_tests!(); }
        mod m9 { ten_tests!(); }
    };
}

mod h0 { hundred_tests!(); }
mod h1 { hundred_tests!(); }
mod h2 { hundred_tests!(); }
mod h3 { hundred_tests!(); }
mod h4 { hundred_tests!(); }
