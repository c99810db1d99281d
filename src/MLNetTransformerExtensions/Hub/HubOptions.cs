namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// Where and how <see cref="HubClient"/> reaches a HuggingFace Hub and keeps its cache.
/// </summary>
/// <remarks>
/// Every default comes from the environment variables Python's <c>huggingface_hub</c> reads, with the same
/// meanings, so that Python and .NET share one cache and one configuration:
/// <list type="table">
/// <listheader><term>Variable</term><description>Meaning (default)</description></listheader>
/// <item><term><c>HF_ENDPOINT</c></term><description>The hub's base address (<see cref="DefaultEndpoint"/>).</description></item>
/// <item><term><c>HF_HOME</c></term><description>Hugging Face's home folder (<c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>).</description></item>
/// <item><term><c>HF_HUB_CACHE</c></term><description>The cache root (<c>$HF_HOME/hub</c>; the older <c>HUGGINGFACE_HUB_CACHE</c> is honoured too).</description></item>
/// <item><term><c>HF_HUB_OFFLINE</c></term><description><c>1</c>, <c>ON</c>, <c>YES</c> or <c>TRUE</c>: no network at all, the cache only (<c>TRANSFORMERS_OFFLINE</c> likewise).</description></item>
/// <item><term><c>HF_TOKEN</c></term><description>Sent as a bearer token (else <c>HUGGING_FACE_HUB_TOKEN</c>, else the file <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c> that <c>hf auth login</c> writes).</description></item>
/// <item><term><c>HF_HUB_ETAG_TIMEOUT</c>, <c>HF_HUB_DOWNLOAD_TIMEOUT</c></term><description>Seconds to wait for file metadata and for each read of a download (10 each).</description></item>
/// </list>
/// Setting a property overrides its variable.
/// </remarks>
public sealed class HubOptions
{
    /// <summary>The public HuggingFace Hub, used when <c>HF_ENDPOINT</c> is not set.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    private static readonly string[] TrueValues = ["1", "ON", "YES", "TRUE"];

    /// <summary>Creates options whose defaults are read from the environment variables (see remarks).</summary>
    public HubOptions()
        : this(Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>Reads the defaults through <paramref name="getVariable"/>, so tests need not touch the process environment.</summary>
    internal HubOptions(Func<string, string?> getVariable)
    {
        string? Variable(string name) => getVariable(name) is { Length: > 0 } value ? value : null;

        Endpoint = Variable("HF_ENDPOINT") ?? DefaultEndpoint;

        var userCache = Variable("XDG_CACHE_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var home = ExpandHome(Variable("HF_HOME") ?? Path.Combine(userCache, "huggingface"));
        CacheDirectory = ExpandHome(Variable("HF_HUB_CACHE") ?? Variable("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"));

        var offline = Variable("HF_HUB_OFFLINE") ?? Variable("TRANSFORMERS_OFFLINE");
        Offline = offline is not null && TrueValues.Contains(offline.Trim(), StringComparer.OrdinalIgnoreCase);

        Token = Variable("HF_TOKEN")?.Trim()
            ?? Variable("HUGGING_FACE_HUB_TOKEN")?.Trim()
            ?? ReadTokenFile(ExpandHome(Variable("HF_TOKEN_PATH") ?? Path.Combine(home, "token")));

        MetadataTimeout = Seconds(Variable("HF_HUB_ETAG_TIMEOUT")) ?? TimeSpan.FromSeconds(10);
        DownloadTimeout = Seconds(Variable("HF_HUB_DOWNLOAD_TIMEOUT")) ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>The hub's base address, e.g. <see cref="DefaultEndpoint"/> or a mirror's (from <c>HF_ENDPOINT</c>).</summary>
    public string Endpoint { get; set; }

    /// <summary>The cache root that holds one <c>models--{owner}--{name}</c> folder per repository (from <c>HF_HUB_CACHE</c>).</summary>
    public string CacheDirectory { get; set; }

    /// <summary>When true, nothing is sent over the network and models come from the cache only (from <c>HF_HUB_OFFLINE</c>).</summary>
    public bool Offline { get; set; }

    /// <summary>The access token sent as <c>Authorization: Bearer</c>, needed for private and gated repositories (from <c>HF_TOKEN</c>).</summary>
    public string? Token { get; set; }

    /// <summary>How long to wait for a file's metadata (from <c>HF_HUB_ETAG_TIMEOUT</c>, in seconds).</summary>
    public TimeSpan MetadataTimeout { get; set; }

    /// <summary>How long a download may wait for its next bytes before it counts as cut (from <c>HF_HUB_DOWNLOAD_TIMEOUT</c>, in seconds).</summary>
    public TimeSpan DownloadTimeout { get; set; }

    /// <summary>
    /// The HTTP handler to send requests through (a proxy setup, or a test's stand-in); null for a default one.
    /// It must not follow redirects itself: the client reads the hub's redirect headers and follows them on its own.
    /// The client does not dispose it.
    /// </summary>
    public HttpMessageHandler? HttpMessageHandler { get; set; }

    /// <summary>The endpoint as an absolute address without a trailing slash, or an error naming the bad value.</summary>
    internal Uri EndpointUri
    {
        get
        {
            if (!Uri.TryCreate(Endpoint.TrimEnd('/'), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new ArgumentException(
                    $"The hub endpoint '{Endpoint}' is not an http(s) address. Set HF_ENDPOINT (or HubOptions.Endpoint) to e.g. {DefaultEndpoint}.",
                    nameof(Endpoint));
            }

            return uri;
        }
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal)
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..]
            : path;

    private static string? ReadTokenFile(string path)
    {
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } token ? token : null;
        }
        catch (IOException)
        {
            return null; // an unreadable token file means no token, as in Python
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static TimeSpan? Seconds(string? value) =>
        double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;
}
