using System.Net;
using System.Security.Cryptography;

namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// Downloads one blob into <c>blobs/{etag}.incomplete</c> and renames it to <c>blobs/{etag}</c> only once it has its
/// full size and, for LFS files, the SHA-256 its ETag names. A cut transfer leaves only the <c>.incomplete</c> file,
/// which nothing trusts and the next run resumes with a Range request (or restarts when the server ignores it).
/// Callers hold the blob's lock, so the <c>.incomplete</c> file has one writer.
/// </summary>
internal static class HubBlobDownload
{
    private const int BufferSize = 1 << 16;
    private const long ProgressStep = 1 << 20;

    internal static async Task DownloadAsync(
        HubHttp http,
        HubReference reference,
        string fileName,
        HubFileMetadata metadata,
        string blobPath,
        IProgress<HubDownloadProgress>? progress,
        CancellationToken cancellationToken)
    {
        var incompletePath = blobPath + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        using var sha256 = metadata.IsLfs ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        long written;
        using (var file = new FileStream(incompletePath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferSize, FileOptions.Asynchronous))
        {
            written = file.Length;
            if (written >= metadata.Size)
            {
                written = 0; // leftovers from another version of the file: start over
                file.SetLength(0);
            }

            if (written > 0 && sha256 is not null)
            {
                await HashPrefixAsync(file, sha256, cancellationToken).ConfigureAwait(false);
            }

            file.Position = written;
            written = await TransferAsync(http, reference, fileName, metadata, file, sha256, written, progress, cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }

        if (written != metadata.Size)
        {
            File.Delete(incompletePath);
            throw new HubException(
                HubErrorKind.IntegrityCheckFailed, reference.RepoId, reference.Revision, fileName,
                $"'{fileName}' of repository '{reference.RepoId}' arrived with {written} bytes, but the hub announced {metadata.Size}; the download was discarded. Run again; if it repeats, a proxy between this machine and {http.Endpoint} alters the content.");
        }

        if (sha256 is not null)
        {
            var actual = Convert.ToHexStringLower(sha256.GetHashAndReset());
            if (!string.Equals(actual, metadata.Etag, StringComparison.OrdinalIgnoreCase))
            {
                File.Delete(incompletePath);
                throw new HubException(
                    HubErrorKind.IntegrityCheckFailed, reference.RepoId, reference.Revision, fileName,
                    $"'{fileName}' of repository '{reference.RepoId}' has SHA-256 {actual}, but the hub announced {metadata.Etag}; the download was discarded. Run again; if it repeats, a proxy or mirror between this machine and {http.Endpoint} serves altered content.");
            }
        }

        File.Move(incompletePath, blobPath, overwrite: true);
    }

    // Returns the file's length when the body ended; a cut body raises TransferInterrupted and keeps the bytes so far.
    private static async Task<long> TransferAsync(
        HubHttp http,
        HubReference reference,
        string fileName,
        HubFileMetadata metadata,
        FileStream file,
        IncrementalHash? sha256,
        long written,
        IProgress<HubDownloadProgress>? progress,
        CancellationToken cancellationToken)
    {
        var report = (long bytes) => progress?.Report(new HubDownloadProgress(reference.RepoId, fileName, bytes, metadata.Size, false, false));
        report(written);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            stall.CancelAfter(http.MetadataTimeout);
            var response = await http.SendAsync(HttpMethod.Get, metadata.Location, followAbsolute: true, rangeStart: written > 0 ? written : null, stall.Token).ConfigureAwait(false);
            try
            {
                var status = (int)response.StatusCode;
                var resumes = written > 0 && status == 206 && response.Content.Headers.ContentRange?.From == written;
                if (written > 0 && !resumes && status is 200 or 206 or 416)
                {
                    // The server ignored or refused the range: start the file over.
                    written = 0;
                    file.SetLength(0);
                    sha256?.GetHashAndReset();
                    if (status != 200)
                    {
                        response.Dispose();
                        response = await http.SendAsync(HttpMethod.Get, metadata.Location, followAbsolute: true, rangeStart: null, stall.Token).ConfigureAwait(false);
                    }
                }

                if (!resumes && response.StatusCode != HttpStatusCode.OK)
                {
                    throw http.ErrorFor(response, reference, fileName);
                }

                return await CopyBodyAsync(response, file, sha256, written, report, http.DownloadTimeout, stall).ConfigureAwait(false);
            }
            finally
            {
                response.Dispose();
            }
        }
        catch (Exception e) when (HubHttp.IsNetworkFailure(e, cancellationToken))
        {
            await file.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            throw new HubException(
                HubErrorKind.TransferInterrupted, reference.RepoId, reference.Revision, fileName,
                $"The download of '{fileName}' from repository '{reference.RepoId}' stopped after {file.Length} of {metadata.Size} bytes "
                + $"({(e is OperationCanceledException ? $"no data for {http.DownloadTimeout.TotalSeconds:0.#} s" : e.Message)}). "
                + $"The partial file {file.Name} is kept out of the snapshot; run again to resume it.",
                e);
        }
    }

    private static async Task<long> CopyBodyAsync(
        HttpResponseMessage response,
        FileStream file,
        IncrementalHash? sha256,
        long written,
        Action<long> report,
        TimeSpan readTimeout,
        CancellationTokenSource stall)
    {
        var lastReport = written;
        var buffer = new byte[BufferSize];
        await using var body = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false);
        while (true)
        {
            stall.CancelAfter(readTimeout); // a stalled connection counts as cut, however long the whole file takes
            var read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
            if (read == 0)
            {
                return written;
            }

            await file.WriteAsync(buffer.AsMemory(0, read), stall.Token).ConfigureAwait(false);
            sha256?.AppendData(buffer, 0, read);
            written += read;
            if (written - lastReport >= ProgressStep)
            {
                report(written);
                lastReport = written;
            }
        }
    }

    private static async Task HashPrefixAsync(FileStream file, IncrementalHash sha256, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        file.Position = 0;
        int read;
        while ((read = await file.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            sha256.AppendData(buffer, 0, read);
        }
    }
}
