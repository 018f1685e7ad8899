import { describe, expect, it } from "vitest";

import { csrfHeaders, readCookie } from "./csrf";

describe("readCookie", () => {
  it("finds a cookie among others, trimming spaces", () => {
    expect(readCookie("sessionid=abc; csrftoken=tok123; theme=dark", "csrftoken")).toBe("tok123");
  });

  it("does not match a cookie whose name only ends with the wanted name", () => {
    expect(readCookie("xcsrftoken=wrong; csrftoken=right", "csrftoken")).toBe("right");
    expect(readCookie("xcsrftoken=wrong", "csrftoken")).toBeNull();
  });

  it("decodes the value and keeps '=' inside it", () => {
    expect(readCookie("csrftoken=a%20b==", "csrftoken")).toBe("a b==");
  });

  it("returns null for an empty cookie string", () => {
    expect(readCookie("", "csrftoken")).toBeNull();
  });
});

describe("csrfHeaders", () => {
  const cookies = "sessionid=s; csrftoken=tok123";

  it.each(["POST", "PUT", "PATCH", "DELETE", "post"])("sends the token on %s", (method) => {
    expect(csrfHeaders(method, cookies)).toEqual({ "X-CSRFToken": "tok123" });
  });

  it.each(["GET", "HEAD", "OPTIONS", "get"])("sends nothing on safe %s", (method) => {
    expect(csrfHeaders(method, cookies)).toEqual({});
  });

  it("sends nothing when there is no csrftoken cookie", () => {
    expect(csrfHeaders("POST", "sessionid=s")).toEqual({});
  });
});
