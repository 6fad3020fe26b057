// Metrics (issue 14): a live thumbnail of a running VM's screen for the list, fetched only while
// the row is on screen (IntersectionObserver) and refreshed every 5 s then; hidden rows ask nothing.
import { useEffect, useRef, useState } from 'react';
import { API_BASE } from '../../api/client';
import { t } from '../../i18n';

const WIDTH = 96;
const REFRESH_MS = 5000;

export function VmThumbnail({ id, name, running }: { id: string; name: string; running: boolean }) {
  const ref = useRef<HTMLSpanElement>(null);
  const [visible, setVisible] = useState(false);
  const [tick, setTick] = useState(0);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver((entries) => setVisible(entries.some((e) => e.isIntersecting)));
    io.observe(el);
    return () => io.disconnect();
  }, []);
  useEffect(() => {
    if (!visible || !running) return;
    const timer = setInterval(() => setTick((n) => n + 1), REFRESH_MS);
    return () => clearInterval(timer);
  }, [visible, running]);
  useEffect(() => setFailed(false), [running]);
  return (
    <span ref={ref} className="vm-thumb" style={{ display: 'inline-block', width: WIDTH, minHeight: 1, verticalAlign: 'middle' }}>
      {visible && running && !failed && (
        <img
          src={`${API_BASE}/vms/${encodeURIComponent(id)}/screenshot?width=${WIDTH}&t=${tick}`}
          width={WIDTH}
          alt={t.metrics.thumbnail(name)}
          loading="lazy"
          decoding="async"
          onError={() => setFailed(true)}
          data-testid={`vm-thumb-${name}`}
          style={{ display: 'block', borderRadius: 2 }}
        />
      )}
    </span>
  );
}
