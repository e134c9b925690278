// XEP-0004 Data Forms (with XEP-0122 validation): build forms, read submissions.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { DeviceState } from '../core/devices.js';

export const NS_DATA = 'jabber:x:data';
export const NS_VALIDATE = 'http://jabber.org/protocol/xdata-validate';

export type FieldType = 'boolean' | 'fixed' | 'hidden' | 'list-single' | 'text-single' | 'text-multi' | 'jid-single';

export interface FormField {
  var?: string;
  type: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values?: string[];
  options?: { label: string; value: string }[];
  /** XEP-0122: datatype (xs:decimal, xs:integer, xs:boolean, xs:string) and an optional range. */
  validate?: { datatype: string; min?: number; max?: number };
}

export interface Form {
  type: 'form' | 'result' | 'submit' | 'cancel';
  title?: string;
  instructions?: string;
  fields: FormField[];
}

export function formElement(form: Form): Element {
  const x = xml('x', { xmlns: NS_DATA, type: form.type });
  if (form.title) x.append(xml('title', {}, form.title));
  if (form.instructions) x.append(xml('instructions', {}, form.instructions));
  for (const f of form.fields) {
    const field = xml('field', { type: f.type, ...(f.var ? { var: f.var } : {}), ...(f.label ? { label: f.label } : {}) });
    if (f.desc) field.append(xml('desc', {}, f.desc));
    if (f.required) field.append(xml('required'));
    if (f.validate) {
      const v = xml('validate', { xmlns: NS_VALIDATE, datatype: f.validate.datatype });
      if (f.validate.min !== undefined || f.validate.max !== undefined) {
        v.append(xml('range', { ...(f.validate.min !== undefined ? { min: String(f.validate.min) } : {}), ...(f.validate.max !== undefined ? { max: String(f.validate.max) } : {}) }));
      } else {
        v.append(xml('basic'));
      }
      field.append(v);
    }
    for (const o of f.options ?? []) field.append(xml('option', { label: o.label }, xml('value', {}, o.value)));
    for (const value of f.values ?? []) field.append(xml('value', {}, value));
    x.append(field);
  }
  return x;
}

/** The values of a submitted form by field var (empty when the element is no data form). */
export function formValues(x: Element | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!x || !x.is('x', NS_DATA)) return out;
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var;
    if (name) out.set(name, f.getChildren('value').map((v) => v.text()));
  }
  return out;
}

/** A form field for setting a device: typed for it, holding its current value, validated to its range. */
export function deviceField(s: DeviceState, name: string, required = false): FormField {
  const { info } = s;
  const label = info.unit ? `${info.name} (${info.unit})` : info.name;
  const values = s.value === undefined ? [] : [typeof s.value === 'boolean' ? (s.value ? '1' : '0') : String(s.value)];
  const base = { var: name, label, values, ...(required ? { required } : {}) };
  if (info.type === 'boolean') return { ...base, type: 'boolean' };
  if (info.type === 'number') return { ...base, type: 'text-single', validate: { datatype: 'xs:double', min: info.min, max: info.max } };
  return { ...base, type: 'text-single', validate: { datatype: 'xs:string' } };
}
