import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Image, ImageCatalogueEntry } from '@qemu-manager/contract';
import { imagesApi } from '../../api/endpoints';
import { qk, useDisks, useImageCatalogue, useImages } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { CopyButton } from '../../components/CopyButton';
import { EmptyState } from '../../components/EmptyState';
import { ErrorText } from '../../components/ErrorText';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { formatBytes, formatDateTime } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { t } from '../../i18n';
import { TaskRunProgress, useTaskRun } from '../tasks/useTaskRun';
import { CreateVmDialog } from '../vms/CreateVmDialog';
import { DownloadImageDialog } from './DownloadImageDialog';
import { UploadImage } from './UploadImage';
import { deleteRefusal, shortSha } from './imageRules';

export function ImagesPage() {
  const images = useImages();
  useTitle(t.images.title);
  const [downloading, setDownloading] = useState(false);
  const sorted = images.data ? [...images.data].sort((a, b) => a.name.localeCompare(b.name)) : [];
  return (
    <section className="page" data-testid="images-page">
      <PageHeader title={t.images.title} intro={t.images.intro}
        action={<Button variant="primary" onClick={() => setDownloading(true)} data-testid="image-download-open">{t.images.download}</Button>} />
      {downloading && <DownloadImageDialog existing={images.data} onClose={() => setDownloading(false)} />}
      <UploadImage existing={images.data} />
      <ListStatus failed={images.isError} loading={images.isPending} error={images.error} failedText={t.images.loadFailed} retry={images.refetch} testId="image-list-error" />
      {images.data?.length === 0 && <EmptyState title={t.images.empty} hint={t.images.emptyHint} testId="image-list-empty" />}
      {sorted.length > 0 && (
        <div className="table image-table" role="table" aria-label={t.images.title}>
          <div className="table-head" role="row">
            {(['name', 'virtualSize', 'size', 'sha256', 'source', 'created', 'usedBy'] as const).map((c) => (
              <span key={c} role="columnheader">{t.images.columns[c]}</span>
            ))}
            <span role="columnheader" className="sr-only">{t.images.columns.actions}</span>
          </div>
          {sorted.map((image) => <ImageRow key={image.name} image={image} />)}
        </div>
      )}
      <Catalogue images={images.data} />
    </section>
  );
}

function ImageRow({ image }: { image: Image }) {
  const qc = useQueryClient();
  const disks = useDisks();
  const [confirm, setConfirm] = useState(false);
  const [creating, setCreating] = useState(false);
  const users = image.usedBy.map((id) => disks.data?.find((d) => d.id === id)?.name ?? id.slice(0, 8));
  return (
    <div className="table-row" role="row" data-testid={`image-row-${image.name}`}>
      <span role="cell" className="cell-name"><span className="vm-name">{image.name}</span></span>
      <span role="cell" data-label={t.images.columns.virtualSize} className="num" data-testid="image-virtual-size">{formatBytes(image.virtualSize)}</span>
      <span role="cell" data-label={t.images.columns.size} className="num">{formatBytes(image.size)}</span>
      <span role="cell" data-label={t.images.columns.sha256} className="cell-sha">
        <span className="mono small" title={image.sha256} data-testid="image-sha">{shortSha(image.sha256)}</span>
        <CopyButton text={image.sha256} testId="image-sha-copy" />
      </span>
      <span role="cell" data-label={t.images.columns.source} className="cell-list">
        {image.source === 'upload' ? t.images.uploaded : <span className="break small" title={image.source}>{image.source}</span>}
      </span>
      <span role="cell" data-label={t.images.columns.created}>{formatDateTime(image.createdAt)}</span>
      <span role="cell" data-label={t.images.columns.usedBy} className="cell-list" data-testid="image-used-by">
        {users.length === 0 ? <span className="muted">{t.images.notUsed}</span> : <span title={users.join(', ')}>{t.images.disksUsing(users.length)}</span>}
      </span>
      <span role="cell" className="cell-actions">
        <Button size="sm" onClick={() => setCreating(true)} data-testid="image-new-vm">{t.images.newVm}</Button>
        <Button size="sm" variant="ghost" onClick={() => setConfirm(true)} data-testid="image-delete">{t.common.delete}</Button>
      </span>
      {creating && <CreateVmDialog open image={image.name} onClose={() => setCreating(false)} />}
      <ConfirmDialog
        open={confirm}
        title={t.images.deleteTitle(image.name)}
        body={<p>{t.images.deleteBody}</p>}
        confirmLabel={t.images.deleteConfirm}
        danger
        testId="delete-image-dialog"
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          try {
            await imagesApi.remove(image.name);
          } catch (err) {
            throw new Error(deleteRefusal(err));
          }
          qc.setQueryData<Image[]>(qk.images, (old) => old?.filter((i) => i.name !== image.name));
        }}
      />
    </div>
  );
}

function Catalogue({ images }: { images: Image[] | undefined }) {
  const catalogue = useImageCatalogue();
  return (
    <section className="card" data-testid="image-catalogue">
      <h2>{t.images.catalogue}</h2>
      <p className="muted small">{t.images.catalogueHint}</p>
      <ErrorText error={catalogue.isError ? `${t.images.catalogueLoadFailed} ${(catalogue.error as Error).message}` : null} testId="image-catalogue-error" />
      {catalogue.data?.length === 0 && <p className="muted">{t.images.catalogueEmpty}</p>}
      <div className="catalogue-grid">
        {catalogue.data?.map((entry) => <CatalogueCard key={entry.id} entry={entry} have={!!images?.some((i) => i.name === entry.id)} />)}
      </div>
    </section>
  );
}

function CatalogueCard({ entry, have }: { entry: ImageCatalogueEntry; have: boolean }) {
  const run = useTaskRun<void>(() => imagesApi.download({ name: entry.id, url: entry.url, checksumUrl: entry.checksumUrl, format: entry.format }));
  return (
    <article className="catalogue-card" data-testid={`catalogue-${entry.id}`}>
      <h3>{entry.title}</h3>
      <p className="muted small mono break">{entry.id}</p>
      {have ? (
        <span className="badge badge-ok" data-testid="catalogue-have">{t.images.catalogueHave}</span>
      ) : (
        <Button size="sm" variant="primary" busy={run.busy} onClick={() => run.start()} data-testid="catalogue-download">
          {run.busy ? t.images.downloading : t.images.catalogueDownload}
        </Button>
      )}
      <TaskRunProgress task={run.task} testId="catalogue-progress" />
      <ErrorText error={run.error} testId="catalogue-error" />
    </article>
  );
}
