import { en, type Messages } from './en';

export type { Messages };

/** The active message catalogue. Only English exists today; pick by navigator.language here later. */
export const t: Messages = en;
