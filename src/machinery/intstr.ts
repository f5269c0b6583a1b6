// IntOrString helpers (k8s.io/apimachinery/pkg/util/intstr): maxSurge / maxUnavailable /
// PodDisruptionBudget values that are either an integer or a percentage string like "25%".

/**
 * Upstream's GetScaledValueFromIntOrPercent: an integer is returned as is; "N%" is N percent of
 * `total`, rounded up (`roundUp`) or down. Any other string, or undefined, throws an Error with
 * upstream's message.
 */
export function resolveIntOrPercent(v: number | string | undefined | null, total: number, roundUp: boolean): number {
  if (v === undefined || v === null) throw new Error('nil value for IntOrString');
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`invalid value for IntOrString: invalid type: neither int nor percentage`);
    return v;
  }
  if (typeof v !== 'string') throw new Error('invalid value for IntOrString: invalid type: neither int nor percentage');
  if (!v.endsWith('%')) throw new Error('invalid value for IntOrString: invalid type: string is not a percentage');
  const digits = v.slice(0, -1);
  // strconv.Atoi: optional sign, decimal digits, nothing else
  if (!/^[+-]?[0-9]+$/.test(digits)) {
    throw new Error(`invalid value for IntOrString: invalid value ${JSON.stringify(v)}: strconv.Atoi: parsing ${JSON.stringify(digits)}: invalid syntax`);
  }
  const pct = Number(digits);
  const scaled = (pct * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/** True for a string of the form "N%". */
export function isPercent(v: number | string | undefined | null): v is string {
  return typeof v === 'string' && /^[+-]?[0-9]+%$/.test(v);
}
