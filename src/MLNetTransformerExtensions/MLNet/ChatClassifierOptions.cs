using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Options of the chat classifier: columns (from <see cref="TextClassificationOptions"/>), the chat model and its prompt,
/// and the limits a paid service needs (concurrency, budgets, timeout, retries, a response cache).
/// </summary>
/// <remarks>
/// <see cref="TextClassificationOptions.BatchSize"/> is the number of rows read ahead when scoring; their requests run
/// up to <see cref="MaximumConcurrency"/> at a time. <see cref="TextClassificationOptions.CancellationToken"/> stops
/// <c>Fit</c> and also the fitted model's scoring. Everything here except the cache folder and the token is saved
/// with the model; the client, its endpoint and its key never are.
/// </remarks>
public sealed class ChatClassifierOptions : TextClassificationOptions
{
    /// <summary>Creates the options with their defaults.</summary>
    public ChatClassifierOptions()
    {
        BatchSize = ChatDefaults.BatchSize;
    }

    /// <summary>The chat model (for example <c>gpt-4o-mini</c>; on Azure OpenAI the deployment name; on Ollama <c>llama3.2</c>).</summary>
    public string ModelId = string.Empty;

    /// <summary>
    /// What the model is told to do, before the list of labels and the answer format. Null: "Classify the text into
    /// exactly one of these labels: …", from the label names.
    /// </summary>
    public string? Instructions;

    /// <summary>Optional descriptions by label name, listed with the labels in the instructions (useful when the names are terse, as <c>True</c>/<c>False</c>).</summary>
    public IDictionary<string, string>? LabelDescriptions;

    /// <summary>Demonstrations per class shown before each text (seeded, balanced; from the training rows). 0 = zero-shot.</summary>
    public int ShotsPerClass;

    /// <summary>Sampling temperature; 0 asks for the model's most likely answer, for repeatable results.</summary>
    public float Temperature;

    /// <summary>The longest reply in tokens; a label in JSON needs a handful.</summary>
    public int MaximumOutputTokens = ChatDefaults.MaximumOutputTokens;

    /// <summary>
    /// Ask for JSON-schema structured output, with the labels as an enum, so a service that supports it can only answer a
    /// label. Turn off for servers that reject <c>response_format</c>; replies are then parsed tolerantly.
    /// </summary>
    public bool UseStructuredOutput = true;

    /// <summary>
    /// Alternatives per token whose log-probabilities are asked for (0 to 20; 0 = do not ask). Where the service returns
    /// them, <c>Score</c> holds the label probabilities they imply; otherwise a one-hot vector of the answer.
    /// </summary>
    public int TopLogProbabilities = ChatDefaults.TopLogProbabilities;

    /// <summary>Requests in flight at once.</summary>
    public int MaximumConcurrency = ChatDefaults.MaximumConcurrency;

    /// <summary>Most requests this classifier may send (retries included), or null for no limit; scoring then stops with an error.</summary>
    public long? MaximumRequests;

    /// <summary>Most prompt plus completion tokens this classifier may spend, or null for no limit; scoring then stops with an error.</summary>
    public long? MaximumTokens;

    /// <summary>How long one request may take before it is abandoned and retried.</summary>
    public TimeSpan RequestTimeout = TimeSpan.FromSeconds(ChatDefaults.RequestTimeoutSeconds);

    /// <summary>Retries of a request after a transient fault (429, 5xx, a timeout, a reply that is not JSON); then the row is reported.</summary>
    public int MaximumRetries = ChatDefaults.MaximumRetries;

    /// <summary>The first retry's wait when the server gives no <c>Retry-After</c>; it doubles with each retry.</summary>
    public TimeSpan RetryBaseDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between retries, <c>Retry-After</c> included.</summary>
    public TimeSpan MaximumRetryDelay = TimeSpan.FromSeconds(60);

    /// <summary>What a reply that names no label, or a row whose requests all failed, scores as.</summary>
    public ChatUnparsedPolicy UnparsedPolicy = ChatUnparsedPolicy.Uniform;

    /// <summary>
    /// A folder for the on-disk response cache, or null (the default) for none. Keyed by the model id and the exact
    /// request, so scoring the same rows again costs nothing; it never holds the key or the endpoint.
    /// </summary>
    public string? CacheDirectory;

    /// <summary>The default values of the chat options.</summary>
    public static class ChatDefaults
    {
        /// <summary>Rows read ahead when scoring: enough to keep the concurrent requests busy.</summary>
        public const int BatchSize = 64;

        /// <summary>The default reply length limit.</summary>
        public const int MaximumOutputTokens = 50;

        /// <summary>The default number of alternatives per token.</summary>
        public const int TopLogProbabilities = 5;

        /// <summary>The default concurrency limit.</summary>
        public const int MaximumConcurrency = 8;

        /// <summary>The default per-request timeout.</summary>
        public const int RequestTimeoutSeconds = 60;

        /// <summary>The default number of retries.</summary>
        public const int MaximumRetries = 4;
    }

    /// <summary>A shallow copy, for a search that varies some options per trial.</summary>
    internal ChatClassifierOptions Clone() => (ChatClassifierOptions)MemberwiseClone();

    internal ChatClassifierSettings ToSettings() => new()
    {
        ModelId = ModelId,
        Instructions = Instructions,
        LabelDescriptions = LabelDescriptions is null ? null : new Dictionary<string, string>(LabelDescriptions),
        Temperature = Temperature,
        MaximumOutputTokens = MaximumOutputTokens,
        StructuredOutput = UseStructuredOutput,
        TopLogProbabilities = TopLogProbabilities,
        MaximumConcurrency = MaximumConcurrency,
        MaximumRequests = MaximumRequests,
        MaximumTokens = MaximumTokens,
        RequestTimeout = RequestTimeout,
        MaximumRetries = MaximumRetries,
        RetryBaseDelay = RetryBaseDelay,
        MaximumRetryDelay = MaximumRetryDelay,
        UnparsedPolicy = UnparsedPolicy,
    };
}
