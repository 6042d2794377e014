import { describe, expect, it } from "vitest";
import { dayBounds, localClock, localDate, localDateTime, zonedToUtc } from "../src/time";

describe("city time zones", () => {
  it("turns a wall time of the city into the instant", () => {
    expect(zonedToUtc("2026-12-03T08:15", "America/Sao_Paulo").toISOString()).toBe("2026-12-03T11:15:00.000Z");
    expect(zonedToUtc("2026-12-03T08:15:30", "America/Manaus").toISOString()).toBe("2026-12-03T12:15:30.000Z");
    expect(zonedToUtc("2026-12-03", "America/Noronha").toISOString()).toBe("2026-12-03T02:00:00.000Z");
  });

  it("follows daylight saving time where a zone has it", () => {
    // São Paulo kept DST until 2019: -02:00 in January 2018, -03:00 in June 2018
    expect(zonedToUtc("2018-01-15T12:00", "America/Sao_Paulo").toISOString()).toBe("2018-01-15T14:00:00.000Z");
    expect(zonedToUtc("2018-06-15T12:00", "America/Sao_Paulo").toISOString()).toBe("2018-06-15T15:00:00.000Z");
    expect(zonedToUtc("2026-07-01T12:00", "Europe/Lisbon").toISOString()).toBe("2026-07-01T11:00:00.000Z");
  });

  it("round-trips every hour of a year", () => {
    for (let h = 0; h < 365 * 24; h += 7) {
      const at = new Date(Date.UTC(2026, 0, 1) + h * 3600_000);
      for (const tz of ["America/Sao_Paulo", "America/Rio_Branco", "Europe/Lisbon"]) {
        expect(zonedToUtc(localDateTime(at, tz), tz).getTime()).toBe(at.getTime());
      }
    }
  });

  it("gives the city's day and clock", () => {
    const at = new Date("2026-12-03T01:02:03Z");
    expect(localDate(at, "America/Sao_Paulo")).toBe("2026-12-02");
    expect(localClock(at, "America/Sao_Paulo")).toBe("22:02:03");
    const [start, end] = dayBounds("2026-12-31", "America/Sao_Paulo");
    expect(start.toISOString()).toBe("2026-12-31T03:00:00.000Z");
    expect(end.toISOString()).toBe("2027-01-01T03:00:00.000Z");
  });

  it("refuses what is not a local time", () => {
    expect(() => zonedToUtc("03/12/2026", "America/Sao_Paulo")).toThrow(RangeError);
  });
});
