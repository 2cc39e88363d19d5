//! The fake's RS256 signing key.
//!
//! **TEST KEY — NOT A SECRET, NEVER USE IT FOR ANYTHING REAL.** It was made
//! once with `openssl genrsa 2048` for the in-process fake AgentIdP, and is
//! embedded because generating an RSA key at run time is slow in debug builds.
//! Anyone can read it here, so a token it signs proves nothing outside a test.

/// The test-only private key (PKCS#8 PEM).
pub(crate) const TEST_ONLY_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCouPjuuc474Bqt\n\
tGAXoW763MwODghj5DiXH+C1j4/iS0hryOupNZWewN3GAlhUrEk0iXRA9nixuddP\n\
25N9uDn/N0p+K3/bBCCyXdYXWBxgJOwXxSCwr1yYbKeiy1cKWHO7YyM/yzYJzqoh\n\
Qe7HdUTp6F50qnt2CkKYxbM5B5mTYaqVBglLNR1Yu+LvcocictOMyvvkM0farN7o\n\
mW1h21JHkQEBhJPUr7z26AmvQjBdq2MEqKkywINrB7UFlTuwnHzvdjGAcalu2zdr\n\
d51xev0jT8MGHmiCPL7hC3XX8q1fwDNQ1JeQWZ9A7YL5fQg1BUaZQU/TeRHtSKlW\n\
aw/bpIHdAgMBAAECggEAEfti1oiZhRKhrUU135bePeDV46KVvNW4PU0RtTAHiPn2\n\
jjxD940FNP3/tOiPkviota93oyvRmbmBi9qOWd4OWlfBefh3YDeMp43uMR88KPgO\n\
bIsfLI2IDBu6cxSCYpEiRoSun1AwYnOy+KfvA7WJInfYR01bKq21wtQBQbEAam9Y\n\
Mc86iq1mgSitbvGrAs+4kmYu0rxCycRQGDDt4XtAFP0ARGRWdyP0HoZMHf70ZSQ6\n\
BLYfMgakkXONFf1M4bZT57YKUWHkDnSdjc5+DLAmAnfp/ne+v3AcaETDnmnwTYmS\n\
kYpKT0bkYiUxpeOmE0ADkTcAmGX5cggXqsdYlH5fgQKBgQDbfGtwTZE6KRuuAG3J\n\
sjEkFCwjgF0YvY2WoBviOzOL7LuLseRyez4ZFmLfLkWjhL0hWd6GaZ+l3VxrYf4D\n\
vHEHbQRkr6BeIU2kddE999QXwzkETDSTcHmO33jJeaW9tYNcASICar036B6N+naM\n\
aWB42RPEXIBRTRh5dfmjwpxJgQKBgQDEypzgHbP4fx/6mUTmUuGZZxeC7m4tD23i\n\
12lDe5JShNVIsSjtXpisY9zzJlFbJ2WIQCgfURLqivYxPKjl+5V++4PNzuBlj19W\n\
j6XPZHXSZRXbjDD7nFPpJ4vqT8jWSOyGavZPfRvFKeRXaTYmXXUlOpmLczZedH+f\n\
En/CEbjOXQKBgF8nJXzeY+OPBsz8qpwSgHNfu3L4p2Oeac+vQedmOwaibvw09xEa\n\
lOVTazHOYapuVYAr8ejbybairPpw1SrRez746DquWRv13C88VKZE1tImdIWEdBan\n\
YEusXjUaY9xG4Nf2NcROehHOs9BhkRt2Y7iAg61RXN/iSIX/u2ZfbFoBAoGAPW1l\n\
ZIvBBrtf1xCKsj6Czyif7S3R1FzxlxJYeEkVVo7CKMusE9QoYf9WE8wNLx/wEIS+\n\
QXBEMFQqHxppOki61IVcEh0WbH1BbDqwrjkUkhUdqodrLs8QXkIK6Zv3+/ONaTPw\n\
KMXLqlK2RRbBYV5g17sf/Kh8+yTwRU439PMlNb0CgYEApI3/E5llkFrJz81ucJWH\n\
EfBz2L/8m6Ye+1Gb2UpGMef76Cgstuj60OIvzejnlNHSZwGc5t4VcrZwaSP7aU6U\n\
Vdyqw8AHKGoxjiQVOHWLfU1A7jjUBGjyFEBKt0enP6GVL/oqL3f4cLlzJtQBcDXl\n\
5YnEG/z3DAw29/A62pJW/9g=\n\
-----END PRIVATE KEY-----\n\
";

/// The public half of [`TEST_ONLY_PRIVATE_KEY_PEM`] (SPKI PEM).
pub(crate) const TEST_ONLY_PUBLIC_KEY_PEM: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqLj47rnOO+AarbRgF6Fu\n\
+tzMDg4IY+Q4lx/gtY+P4ktIa8jrqTWVnsDdxgJYVKxJNIl0QPZ4sbnXT9uTfbg5\n\
/zdKfit/2wQgsl3WF1gcYCTsF8UgsK9cmGynostXClhzu2MjP8s2Cc6qIUHux3VE\n\
6ehedKp7dgpCmMWzOQeZk2GqlQYJSzUdWLvi73KHInLTjMr75DNH2qze6JltYdtS\n\
R5EBAYST1K+89ugJr0IwXatjBKipMsCDawe1BZU7sJx873YxgHGpbts3a3edcXr9\n\
I0/DBh5ogjy+4Qt11/KtX8AzUNSXkFmfQO2C+X0INQVGmUFP03kR7UipVmsP26SB\n\
3QIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
