using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace MLNetTransformerExtensions.Hub;

/// <summary>What the hub says about one file at one revision (from the headers of its <c>resolve</c> endpoint).</summary>
/// <param name="Commit">The commit the revision resolved to (<c>X-Repo-Commit</c>).</param>
/// <param name="Etag">The blob's name: its SHA-256 for LFS files (<c>X-Linked-Etag</c>), else its git SHA-1 (<c>ETag</c>).</param>
/// <param name="Size">The file's size (<c>X-Linked-Size</c> for LFS files, else <c>Content-Length</c>).</param>
/// <param name="Location">Where to GET the content: the CDN address an LFS file redirects to, else the resolve address.</param>
/// <param name="IsLfs">True when the file lives in LFS storage, whose ETag is the SHA-256 of the content.</param>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location, bool IsLfs);

/// <summary>The files of a repository at one commit, from the hub's model API.</summary>
internal sealed record HubRepoListing(string Commit, IReadOnlySet<string> Files);

/// <summary>
/// The HTTP conversation with a hub: the <c>resolve</c> endpoint's HEAD for metadata, the model API for file
/// lists, GETs for content. Redirects are followed here, not by the handler, because an LFS file's metadata sits
/// on the redirect itself and the token must not travel to another host (the CDN's addresses are signed).
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;
    private static readonly string UserAgent = $"MLNetTransformerExtensions/{typeof(HubHttp).Assembly.GetName().Version?.ToString(3)} dotnet/{Environment.Version}";

    private readonly HttpClient client;
    private readonly Uri endpointUri;
    private readonly string? token;

    internal HubHttp(HubOptions options)
    {
        endpointUri = options.EndpointUri;
        Endpoint = endpointUri.AbsoluteUri.TrimEnd('/');
        token = string.IsNullOrWhiteSpace(options.Token) ? null : options.Token.Trim();
        MetadataTimeout = options.MetadataTimeout;
        DownloadTimeout = options.DownloadTimeout;
        client = options.HttpMessageHandler is { } handler
            ? new HttpClient(handler, disposeHandler: false)
            : new HttpClient(new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                AutomaticDecompression = DecompressionMethods.None,
                ConnectTimeout = options.MetadataTimeout,
            });
        client.Timeout = Timeout.InfiniteTimeSpan; // per-request and per-read timeouts are applied by the callers
    }

    /// <summary>The hub's base address without a trailing slash, as URLs are built from it and errors show it.</summary>
    internal string Endpoint { get; }

    internal TimeSpan MetadataTimeout { get; }

    internal TimeSpan DownloadTimeout { get; }

    internal bool HasToken => token is not null;

    public void Dispose() => client.Dispose();

    internal Uri ResolveUri(string repoId, string revision, string fileName) =>
        new($"{Endpoint}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', fileName.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>
    /// Sends one request and follows redirects as <paramref name="followAbsolute"/> says: relative ones (a renamed
    /// repository) always, absolute ones (a CDN) only when asked. The token is dropped once a redirect leaves the host.
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, Uri uri, bool followAbsolute, long? rangeStart, CancellationToken cancellationToken)
    {
        var sendToken = token is not null && SameHost(uri, endpointUri);
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity")); // sizes must be the real ones
            if (sendToken)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            if (rangeStart is { } start)
            {
                request.Headers.Range = new RangeHeaderValue(start, null);
            }

            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var location = response.Headers.Location;
            var isRedirect = (int)response.StatusCode is >= 300 and < 400 && location is not null;
            if (!isRedirect || hop == MaxRedirects || (location!.IsAbsoluteUri && !followAbsolute))
            {
                return response;
            }

            response.Dispose();
            var next = new Uri(uri, location);
            sendToken &= SameHost(next, uri);
            uri = next;
        }
    }

    /// <summary>
    /// HEADs a file's resolve address. Returns null when the hub says the file is not there (with the commit it
    /// checked, when it told); throws a <see cref="HubException"/> naming the repository for every other failure.
    /// </summary>
    internal async Task<(HubFileMetadata? Metadata, string? MissingAtCommit)> GetFileMetadataAsync(
        HubReference reference, string fileName, CancellationToken cancellationToken)
    {
        var uri = ResolveUri(reference.RepoId, reference.Revision, fileName);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(MetadataTimeout);
        try
        {
            using var response = await SendAsync(HttpMethod.Head, uri, followAbsolute: false, rangeStart: null, timeout.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            var commit = Header(response, "X-Repo-Commit");
            if (status is < 200 or >= 400)
            {
                if (ErrorCode(response) == "EntryNotFound" || (status == 404 && ErrorCode(response) is null))
                {
                    return (null, commit);
                }

                throw ErrorFor(response, reference, fileName);
            }

            // LFS files answer with a redirect to the CDN that carries the content's SHA-256 and size.
            var linkedEtag = Header(response, "X-Linked-Etag");
            var etag = NormalizeEtag(linkedEtag ?? response.Headers.ETag?.Tag ?? Header(response, "ETag"));
            var size = long.TryParse(Header(response, "X-Linked-Size"), out var linkedSize) ? linkedSize
                : status < 300 ? response.Content.Headers.ContentLength : null;
            if (commit is null || etag is null || size is null)
            {
                var missing = commit is null ? "X-Repo-Commit" : etag is null ? "ETag" : "Content-Length";
                throw new HubException(
                    HubErrorKind.UnexpectedResponse, reference.RepoId, reference.Revision, fileName,
                    $"{uri} answered without the {missing} header every HuggingFace Hub sends, so '{fileName}' of '{reference.RepoId}' cannot be cached safely. "
                    + $"Check HF_ENDPOINT ({Endpoint}) and any proxy or firewall between this machine and the hub.");
            }

            // Content comes from the commit, not the branch, so a push between HEAD and GET cannot mix versions.
            var location = status >= 300 && response.Headers.Location is { } redirect
                ? new Uri(uri, redirect)
                : ResolveUri(reference.RepoId, commit, fileName);
            var isLfs = linkedEtag is not null && etag.Length == 64 && etag.All(char.IsAsciiHexDigit);
            return (new HubFileMetadata(commit, etag, size.Value, location, isLfs), null);
        }
        catch (Exception e) when (IsNetworkFailure(e, cancellationToken))
        {
            throw Unreachable(reference, fileName, uri, e);
        }
    }

    /// <summary>
    /// Asks the model API for the commit and file list of a revision. Returns null when this server has no such
    /// API (a plain mirror), so the caller probes file by file; throws for what the hub says is wrong.
    /// </summary>
    internal async Task<HubRepoListing?> GetRepoListingAsync(HubReference reference, CancellationToken cancellationToken)
    {
        var uri = new Uri($"{Endpoint}/api/models/{reference.RepoId}/revision/{Uri.EscapeDataString(reference.Revision)}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(MetadataTimeout);
        try
        {
            using var response = await SendAsync(HttpMethod.Get, uri, followAbsolute: false, rangeStart: null, timeout.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (ErrorCode(response) is not null || status is 401 or 403)
            {
                throw ErrorFor(response, reference, null);
            }

            if (status != 200)
            {
                return null;
            }

            var json = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            return ParseListing(json);
        }
        catch (Exception e) when (IsNetworkFailure(e, cancellationToken))
        {
            throw Unreachable(reference, null, uri, e);
        }
    }

    /// <summary>Turns a failed answer into an error that names the repository and says what to do.</summary>
    internal HubException ErrorFor(HttpResponseMessage response, HubReference reference, string? fileName)
    {
        var status = (int)response.StatusCode;
        var repo = reference.RepoId;
        var code = ErrorCode(response);
        var serverSays = Header(response, "X-Error-Message") is { } said ? $" The hub said: {said}" : "";
        var tokenAdvice = HasToken
            ? "The token sent (HF_TOKEN or HubOptions.Token) was not accepted for it: check that it is valid and may read this repository."
            : "If it is private or gated, create an access token on the hub and set HF_TOKEN (or HubOptions.Token).";
        return code switch
        {
            "RepoNotFound" => new HubException(
                HubErrorKind.RepositoryNotFound, repo, reference.Revision, fileName,
                $"Repository '{repo}' was not found on {Endpoint} ({status}). Check the id (owner/name). {tokenAdvice}{serverSays}"),
            "RevisionNotFound" => new HubException(
                HubErrorKind.RevisionNotFound, repo, reference.Revision, fileName,
                $"Revision '{reference.Revision}' was not found in repository '{repo}' on {Endpoint}. Check the branch, tag or commit after '@'.{serverSays}"),
            "EntryNotFound" => new HubException(
                HubErrorKind.EntryNotFound, repo, reference.Revision, fileName,
                $"File '{fileName}' was not found in repository '{repo}' at revision '{reference.Revision}'.{serverSays}"),
            "GatedRepo" => new HubException(
                HubErrorKind.AuthenticationRequired, repo, reference.Revision, fileName,
                $"Repository '{repo}' is gated ({status}): accept its conditions at {Endpoint}/{repo} with your account, then set HF_TOKEN (or HubOptions.Token) to a token of that account.{serverSays}"),
            _ when status is 401 or 403 => new HubException(
                HubErrorKind.AuthenticationRequired, repo, reference.Revision, fileName,
                $"Repository '{repo}' on {Endpoint} requires authentication ({status} {response.ReasonPhrase}). {tokenAdvice}{serverSays}"),
            _ => new HubException(
                HubErrorKind.HubUnreachable, repo, reference.Revision, fileName,
                $"{Endpoint} answered {status} {response.ReasonPhrase} for {(fileName is null ? "" : $"'{fileName}' of ")}repository '{repo}'. The hub may be down: try again later.{serverSays}"),
        };
    }

    // Timeouts count as network failures; the caller's own cancellation does not.
    internal static bool IsNetworkFailure(Exception e, CancellationToken callerToken) =>
        e is HttpRequestException or IOException || (e is OperationCanceledException && !callerToken.IsCancellationRequested);

    private HubException Unreachable(HubReference reference, string? fileName, Uri uri, Exception e) => new(
        HubErrorKind.HubUnreachable, reference.RepoId, reference.Revision, fileName,
        $"Could not reach {Endpoint} for repository '{reference.RepoId}' ({(e is OperationCanceledException ? $"no answer within {MetadataTimeout.TotalSeconds:0.#} s" : e.Message)}; {uri}). "
        + "Check the network connection, proxy settings and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only.",
        e);

    private static HubRepoListing? ParseListing(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("sha", out var sha) || sha.GetString() is not { } commit || !HubReference.IsCommitHash(commit)
                || !root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var files = new HashSet<string>(StringComparer.Ordinal);
            foreach (var sibling in siblings.EnumerateArray())
            {
                if (sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out var name) && name.GetString() is { } file)
                {
                    files.Add(file);
                }
            }

            return new HubRepoListing(commit, files);
        }
        catch (JsonException)
        {
            return null; // not the hub's API: fall back to probing
        }
    }

    private static bool SameHost(Uri a, Uri b) =>
        string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port && a.Scheme == b.Scheme;

    private static string? ErrorCode(HttpResponseMessage response) => Header(response, "X-Error-Code");

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault()
            : null;

    // ETags arrive quoted and sometimes weak (W/"..."); the cache names blobs by the bare value.
    private static string? NormalizeEtag(string? etag)
    {
        if (etag is null)
        {
            return null;
        }

        if (etag.StartsWith("W/", StringComparison.Ordinal))
        {
            etag = etag[2..];
        }

        etag = etag.Trim('"');
        return etag.Length > 0 && !etag.Any(c => c is '/' or '\\') ? etag : null;
    }
}
