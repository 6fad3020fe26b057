import { useEffect, useRef, useState, type ReactNode } from 'react';

export interface MenuItem {
  key: string;
  label: ReactNode;
  onSelect: () => void;
  danger?: boolean;
  testId?: string;
}

/** Safe items first, destructive ones last behind a separator. */
export function orderMenuItems(items: MenuItem[]): Array<MenuItem & { separator?: boolean }> {
  const safe = items.filter((i) => !i.danger);
  const danger = items.filter((i) => i.danger);
  return [...safe, ...danger.map((d, i) => ({ ...d, separator: i === 0 && safe.length > 0 }))];
}

interface Props {
  label: ReactNode;
  /** Accessible name when the label is an icon. */
  ariaLabel?: string;
  items: MenuItem[];
  testId?: string;
  align?: 'left' | 'right';
  /** 'icon' for a "⋯" trigger, 'text' for a labelled one. */
  trigger?: 'icon' | 'text';
  disabled?: boolean;
}

/** A small dropdown menu: click to open, Escape or a click outside to close. */
export function Menu({ label, ariaLabel, items, testId, align = 'right', trigger = 'icon', disabled = false }: Props) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: PointerEvent) => {
      if (!root.current?.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    document.addEventListener('pointerdown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('pointerdown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);
  if (items.length === 0) return null;
  return (
    <div className="menu" ref={root}>
      <button
        type="button"
        className={`btn btn-ghost btn-sm menu-trigger ${trigger === 'icon' ? 'menu-trigger-icon' : ''}`}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label={ariaLabel}
        title={ariaLabel}
        data-testid={testId}
        disabled={disabled}
        onClick={() => setOpen((o) => !o)}
      >
        {label}
      </button>
      {open && !disabled && (
        <div className={`menu-list menu-${align}`} role="menu">
          {orderMenuItems(items).map((item) => (
            <button
              key={item.key}
              type="button"
              role="menuitem"
              className={`menu-item ${item.danger ? 'is-danger' : ''} ${item.separator ? 'has-separator' : ''}`}
              data-testid={item.testId}
              onClick={() => {
                setOpen(false);
                item.onSelect();
              }}
            >
              {item.label}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}
