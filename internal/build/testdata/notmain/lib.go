package notmain

// Answer is not a program.
const Answer = 42
