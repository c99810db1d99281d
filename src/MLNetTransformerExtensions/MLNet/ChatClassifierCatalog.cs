using Microsoft.Extensions.AI;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A chat model (GPT-4-class, or any model behind an OpenAI-compatible server) as a trainer in ML.NET's catalogs:
/// <c>mlContext.MulticlassClassification.Trainers.ChatClassifier(client, ...)</c> and the same on
/// <c>BinaryClassification.Trainers</c>; and how a loaded model gets its client back.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns.</b> As the other text classifiers (<see cref="TextClassificationEstimator"/>): a text
/// column, an optional second text column, and a key (multiclass) or Boolean (binary) label; outputs <c>Score</c>,
/// <c>PredictedLabel</c> (and <c>Probability</c> for binary).</para>
/// <para><b>Trainer characteristics.</b> No gradient: <c>Fit</c> learns the label set from the label's key values and
/// picks the demonstrations, and sends no request. Scoring sends one request per row (or answers it from the response
/// cache), up to <see cref="ChatClassifierOptions.MaximumConcurrency"/> at a time, asking for a JSON answer constrained
/// to the labels. <c>Score</c> comes from the label token's log-probabilities where the service returns them, else it
/// is one-hot. A reply naming no label, or a row whose requests all failed, scores by
/// <see cref="ChatClassifierOptions.UnparsedPolicy"/> (uniform by default) and is counted; read the counts with
/// <see cref="GetChatUsage"/>. The model file holds the options, labels and demonstrations, never the client or its key:
/// after <c>mlContext.Model.Load</c>, call <see cref="UseChatClient"/>.</para>
/// </remarks>
public static class ChatClassifierCatalog
{
    /// <summary>Classifies texts with a chat model, zero- or few-shot.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="chatClient">The client requests go to (for example <see cref="ChatClients.CreateOpenAICompatible"/>); the caller disposes it.</param>
    /// <param name="modelId">The chat model.</param>
    /// <param name="labelColumnName">The label column: a key type, as <c>MapValueToKey</c> makes.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="shotsPerClass">Demonstrations per class (0 = zero-shot).</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator ChatClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, IChatClient chatClient,
        string modelId, string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        int shotsPerClass = 0) =>
        catalog.ChatClassifier(chatClient, new ChatClassifierOptions { ModelId = modelId, LabelColumnName = labelColumnName, TextColumnName = textColumnName, ShotsPerClass = shotsPerClass });

    /// <summary>Classifies texts with a chat model, with every option.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="chatClient">The client requests go to; the caller disposes it.</param>
    /// <param name="options">Columns, the model, the prompt and the limits.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator ChatClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, IChatClient chatClient, ChatClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Multiclass, chatClient, options);

    /// <summary>Classifies texts with a chat model for a Boolean label (the labels are <c>False</c> and <c>True</c>: describe them with <see cref="ChatClassifierOptions.LabelDescriptions"/>).</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="chatClient">The client requests go to; the caller disposes it.</param>
    /// <param name="modelId">The chat model.</param>
    /// <param name="labelColumnName">The Boolean label column.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="shotsPerClass">Demonstrations per class (0 = zero-shot).</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator ChatClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, IChatClient chatClient,
        string modelId, string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        int shotsPerClass = 0) =>
        catalog.ChatClassifier(chatClient, new ChatClassifierOptions { ModelId = modelId, LabelColumnName = labelColumnName, TextColumnName = textColumnName, ShotsPerClass = shotsPerClass });

    /// <summary>Classifies texts with a chat model for a Boolean label, with every option.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="chatClient">The client requests go to; the caller disposes it.</param>
    /// <param name="options">Columns, the model, the prompt and the limits.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator ChatClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, IChatClient chatClient, ChatClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Binary, chatClient, options);

    /// <summary>
    /// Gives the chat classifiers in <paramref name="model"/> a client, as a model loaded from a file needs (it never holds
    /// one), or a new one for a trained model.
    /// </summary>
    /// <param name="model">A chat classifier's transformer, or a chain holding one (what <c>mlContext.Model.Load</c> returns).</param>
    /// <param name="chatClient">The client requests go to; the caller disposes it.</param>
    /// <param name="cacheDirectory">A folder for the on-disk response cache, or null for none.</param>
    /// <param name="cancellationToken">Stops scoring when cancelled.</param>
    /// <exception cref="InvalidOperationException">The model holds no chat classifier.</exception>
    public static void UseChatClient(this ITransformer model, IChatClient chatClient, string? cacheDirectory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        foreach (var classifier in ChatClassifiersIn(model))
        {
            classifier.Client = chatClient;
            classifier.Cache = cacheDirectory is null ? null : new ChatResponseCache(cacheDirectory);
            classifier.CancellationToken = cancellationToken;
        }
    }

    /// <summary>What the model's chat classifier has cost so far: requests, tokens, cache hits, unparsed and failed rows.</summary>
    /// <param name="model">A chat classifier's transformer, or a chain holding one.</param>
    /// <returns>A copy of the counts as they are now.</returns>
    /// <exception cref="InvalidOperationException">The model holds no chat classifier.</exception>
    public static ChatClassifierUsage GetChatUsage(this ITransformer model) => ChatClassifiersIn(model).First().Usage.Snapshot();

    /// <summary>True when <paramref name="model"/> holds a chat classifier (which then needs <see cref="UseChatClient"/> after loading).</summary>
    /// <param name="model">Any ML.NET model.</param>
    /// <returns>Whether it holds a chat classifier.</returns>
    public static bool HasChatClassifier(this ITransformer model) => Flatten(model).Any(IsChat);

    /// <summary>The chat model the model's chat classifier asks, or null when it holds none.</summary>
    /// <param name="model">Any ML.NET model.</param>
    /// <returns>The model id, or null.</returns>
    public static string? GetChatModelId(this ITransformer model) =>
        Flatten(model).Where(IsChat).Select(t => ((ChatClassificationModel)((TextClassificationTransformer)t).Classifier).Inner.Settings.ModelId).FirstOrDefault();

    private static TextClassificationEstimator Create(IHostEnvironment env, TextClassificationTask task, IChatClient chatClient, ChatClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ShotsPerClass < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ShotsPerClass, "ShotsPerClass must be 0 or more.");
        }

        var settings = options.ToSettings();
        settings.Validate();
        return new TextClassificationEstimator(env, task, options,
            new ChatClassificationTrainer(chatClient, settings, options.ShotsPerClass, options.CacheDirectory, options.CancellationToken), ChatClassificationModel.Format);
    }

    private static IEnumerable<ChatClassifier> ChatClassifiersIn(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var found = Flatten(model).Where(IsChat).Select(t => ((ChatClassificationModel)((TextClassificationTransformer)t).Classifier).Inner).ToList();
        return found.Count > 0 ? found : throw new InvalidOperationException(
            "The model holds no chat classifier; UseChatClient and GetChatUsage apply to models trained with the ChatClassifier trainer.");
    }

    private static bool IsChat(ITransformer transformer) => transformer is TextClassificationTransformer { Classifier: ChatClassificationModel };

    private static IEnumerable<ITransformer> Flatten(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [model];
}
