// Mirrors HuggingFace transformers' models/bert/modeling_bert.py. RoBERTa reuses this body (Roberta.cs).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>Word + position + token-type embeddings, LayerNorm, dropout, as BertEmbeddings (and RobertaEmbeddings).</summary>
internal sealed class BertEmbeddings : nn.Module<Tensor, Tensor?, Tensor, Tensor>
{
    private readonly Embedding word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly Embedding token_type_embeddings;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;
    private readonly bool roberta;
    private readonly long paddingIdx;

    /// <summary>Creates the embeddings from a BERT or RoBERTa config.</summary>
    /// <param name="config">The config.</param>
    public BertEmbeddings(TransformerConfig config) : base(nameof(BertEmbeddings))
    {
        paddingIdx = config.PadTokenId ?? 0;
        roberta = config.Family == ModelFamily.Roberta;
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: paddingIdx);
        position_embeddings = roberta
            ? nn.Embedding(config.MaxPositions, config.HiddenSize, padding_idx: paddingIdx)
            : nn.Embedding(config.MaxPositions, config.HiddenSize);
        token_type_embeddings = nn.Embedding(Math.Max(config.TypeVocabSize, 1), config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>The word-embedding matrix (vocab, H), which masked-LM heads share.</summary>
    public Parameter WordEmbeddings => word_embeddings.weight!;

    /// <summary>Embeds token ids.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="tokenTypeIds">(B, T), or null for zeros.</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor? tokenTypeIds, Tensor attentionMask)
    {
        Tensor positions;
        if (roberta)
        {
            // RoBERTa counts positions from padding_idx + 1 over real tokens; padding keeps padding_idx.
            var real = inputIds.ne(paddingIdx).to(ScalarType.Int64);
            positions = real.cumsum(1).mul(real).add(paddingIdx);
        }
        else
        {
            // Positions count real tokens (0, 1, ... from the first one): the same as HuggingFace's arange for
            // unpadded and right-padded rows, and it keeps a left-padded row equal to its unpadded self.
            positions = attentionMask.cumsum(1).sub(1).clamp_min(0);
        }

        var types = tokenTypeIds ?? zeros_like(inputIds);
        var embeddings = word_embeddings.call(inputIds) + position_embeddings.call(positions) + token_type_embeddings.call(types);
        return dropout.call(LayerNorm.call(embeddings));
    }
}

/// <summary>Multi-head self-attention projections, as BertSelfAttention; the product runs in libtorch's fused kernel.</summary>
internal sealed class BertSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear query;
    private readonly Linear key;
    private readonly Linear value;
    private readonly int heads;
    private readonly int headDim;
    private readonly double attentionDropout;

    /// <summary>Creates the projections.</summary>
    /// <param name="config">The config.</param>
    public BertSelfAttention(TransformerConfig config) : base(nameof(BertSelfAttention))
    {
        heads = config.NumHeads;
        headDim = config.HeadDim;
        attentionDropout = config.AttentionDropout;
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>Attends over the sequence.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask (B, 1, 1, T), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        // (B, T, H) -> (B, nh, T, hs)
        Tensor Split(Tensor x) => x.view(batch, length, heads, headDim).transpose(1, 2);
        var context = Layers.Attend(Split(query.call(hidden)), Split(key.call(hidden)), Split(value.call(hidden)),
            mask, training ? attentionDropout : 0.0, causal: false);
        // (B, nh, T, hs) -> (B, T, H)
        return context.transpose(1, 2).reshape(batch, length, heads * headDim);
    }
}

/// <summary>Output projection, dropout and post-LN residual, as BertSelfOutput.</summary>
internal sealed class BertSelfOutput : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Creates the block.</summary>
    /// <param name="config">The config.</param>
    public BertSelfOutput(TransformerConfig config) : base(nameof(BertSelfOutput))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(x)) + residual).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="residual">(B, T, H).</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor residual) =>
        LayerNorm.call(dropout.call(dense.call(hidden)) + residual);
}

/// <summary>Self-attention followed by its output block, as BertAttention.</summary>
internal sealed class BertAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly BertSelfAttention self;
    private readonly BertSelfOutput output;

    /// <summary>Creates the block.</summary>
    /// <param name="config">The config.</param>
    public BertAttention(TransformerConfig config) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(config);
        output = new BertSelfOutput(config);
        RegisterComponents();
    }

    /// <summary>Attention with its residual.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask) => output.call(self.call(hidden, mask), hidden);
}

/// <summary>The feed-forward expansion with the config's activation, as BertIntermediate.</summary>
internal sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly Activation activation;

    /// <summary>Creates the block.</summary>
    /// <param name="config">The config.</param>
    public BertIntermediate(TransformerConfig config) : base(nameof(BertIntermediate))
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>act(dense(x)).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <returns>(B, T, I).</returns>
    public override Tensor forward(Tensor hidden) => Layers.Activate(dense.call(hidden), activation);
}

/// <summary>The feed-forward contraction with post-LN residual, as BertOutput.</summary>
internal sealed class BertOutput : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Creates the block.</summary>
    /// <param name="config">The config.</param>
    public BertOutput(TransformerConfig config) : base(nameof(BertOutput))
    {
        dense = nn.Linear(config.IntermediateSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(x)) + residual).</summary>
    /// <param name="hidden">(B, T, I).</param>
    /// <param name="residual">(B, T, H).</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor residual) =>
        LayerNorm.call(dropout.call(dense.call(hidden)) + residual);
}

/// <summary>One post-LN encoder layer, as BertLayer.</summary>
internal sealed class BertLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertOutput output;

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The config.</param>
    public BertLayer(TransformerConfig config) : base(nameof(BertLayer))
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertOutput(config);
        RegisterComponents();
    }

    /// <summary>Attention then feed-forward.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var attended = attention.call(hidden, mask);
        return output.call(intermediate.call(attended), attended);
    }
}

/// <summary>The stack of layers, as BertEncoder.</summary>
internal sealed class BertEncoder : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ModuleList<BertLayer> layer;

    /// <summary>Creates the stack.</summary>
    /// <param name="config">The config.</param>
    public BertEncoder(TransformerConfig config) : base(nameof(BertEncoder))
    {
        layer = nn.ModuleList([.. Enumerable.Range(0, config.NumLayers).Select(_ => new BertLayer(config))]);
        RegisterComponents();
    }

    /// <summary>Runs every layer with one shared mask.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        foreach (var l in layer)
        {
            hidden = l.call(hidden, mask);
        }

        return hidden;
    }
}

/// <summary>Dense + tanh on the first token, as BertPooler.</summary>
internal sealed class BertPooler : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;

    /// <summary>Creates the pooler.</summary>
    /// <param name="config">The config.</param>
    public BertPooler(TransformerConfig config) : base(nameof(BertPooler))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>tanh(dense(first token)).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor attentionMask) => dense.call(Layers.FirstToken(hidden, attentionMask)).tanh();
}

/// <summary>The bare encoder (embeddings, layers, optional pooler), as BertModel; also RoBERTa's body.</summary>
internal sealed class BertModel : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;

    /// <summary>Creates the body.</summary>
    /// <param name="config">A BERT or RoBERTa config.</param>
    /// <param name="addPoolingLayer">Whether to include the pooler (sequence classification uses it; masked-LM does not).</param>
    public BertModel(TransformerConfig config, bool addPoolingLayer) : base(nameof(BertModel))
    {
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = addPoolingLayer ? new BertPooler(config) : null;
        RegisterComponents();
    }

    /// <summary>The word-embedding matrix (vocab, H).</summary>
    public Parameter WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>Final hidden states.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <param name="tokenTypeIds">(B, T), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var hidden = embeddings.call(inputIds, tokenTypeIds, attentionMask);
        return encoder.call(hidden, Layers.EncoderAttentionMask(attentionMask, hidden.dtype));
    }

    /// <summary>The pooled first token.</summary>
    /// <param name="hidden">Final hidden states (B, T, H).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, H).</returns>
    public Tensor Pool(Tensor hidden, Tensor attentionMask) =>
        (pooler ?? throw new InvalidOperationException("This BERT body was built without a pooler.")).call(hidden, attentionMask);
}

/// <summary>pooler → dropout → linear, as BertForSequenceClassification.</summary>
internal sealed class BertForSequenceClassification : SequenceClassificationModel
{
    private readonly BertModel bert;
    private readonly Dropout dropout;
    private readonly Linear classifier;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A BERT config; its labels size the classifier.</param>
    public BertForSequenceClassification(TransformerConfig config) : base(nameof(BertForSequenceClassification), config)
    {
        bert = new BertModel(config, addPoolingLayer: true);
        dropout = nn.Dropout(config.ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["classifier."];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        bert.call(inputIds, attentionMask, tokenTypeIds);

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var hidden = bert.call(inputIds, attentionMask, tokenTypeIds);
        return classifier.call(dropout.call(bert.Pool(hidden, attentionMask)));
    }
}

/// <summary>dense → act → LayerNorm, then the tied decoder with its own bias, as BertOnlyMLMHead (<c>cls.predictions</c>).</summary>
internal sealed class BertLMPredictionHead : nn.Module<Tensor, Tensor>
{
    private readonly BertPredictionHeadTransform transform;
    private readonly Parameter bias;
    private readonly Parameter decoderWeight;

    /// <summary>Creates the head over a shared embedding matrix.</summary>
    /// <param name="config">The config.</param>
    /// <param name="wordEmbeddings">The word embeddings (vocab, H) the decoder shares.</param>
    public BertLMPredictionHead(TransformerConfig config, Parameter wordEmbeddings) : base(nameof(BertLMPredictionHead))
    {
        transform = new BertPredictionHeadTransform(config);
        bias = new Parameter(zeros(config.VocabSize));
        RegisterComponents();
        decoderWeight = wordEmbeddings; // not registered: the checkpoint stores it once, as the embeddings
    }

    /// <summary>Vocabulary logits.</summary>
    /// <param name="hidden">(..., H).</param>
    /// <returns>(..., vocab).</returns>
    public override Tensor forward(Tensor hidden) => nn.functional.linear(transform.call(hidden), decoderWeight, bias);

    /// <summary>Releases this handle on the shared embedding matrix (the embedding keeps its own).</summary>
    /// <param name="disposing">Whether managed resources are released.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            decoderWeight.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>dense → activation → LayerNorm, as BertPredictionHeadTransform.</summary>
internal sealed class BertPredictionHeadTransform : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly Activation activation;

    /// <summary>Creates the transform.</summary>
    /// <param name="config">The config.</param>
    public BertPredictionHeadTransform(TransformerConfig config) : base(nameof(BertPredictionHeadTransform))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>LayerNorm(act(dense(h))).</summary>
    /// <param name="hidden">(..., H).</param>
    /// <returns>(..., H).</returns>
    public override Tensor forward(Tensor hidden) => LayerNorm.call(Layers.Activate(dense.call(hidden), activation));
}

/// <summary>The <c>cls</c> container of BertForMaskedLM, so its key is <c>cls.predictions.*</c>.</summary>
internal sealed class BertOnlyMLMHead : nn.Module<Tensor, Tensor>
{
    private readonly BertLMPredictionHead predictions;

    /// <summary>Creates the head.</summary>
    /// <param name="config">The config.</param>
    /// <param name="wordEmbeddings">The shared word embeddings.</param>
    public BertOnlyMLMHead(TransformerConfig config, Parameter wordEmbeddings) : base(nameof(BertOnlyMLMHead))
    {
        predictions = new BertLMPredictionHead(config, wordEmbeddings);
        RegisterComponents();
    }

    /// <summary>Vocabulary logits.</summary>
    /// <param name="hidden">(..., H).</param>
    /// <returns>(..., vocab).</returns>
    public override Tensor forward(Tensor hidden) => predictions.call(hidden);
}

/// <summary>The encoder with its masked-LM head, as BertForMaskedLM (no pooler).</summary>
internal sealed class BertForMaskedLM : LanguageModel
{
    private readonly BertModel bert;
    private readonly BertOnlyMLMHead cls;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A BERT config.</param>
    public BertForMaskedLM(TransformerConfig config) : base(nameof(BertForMaskedLM), config)
    {
        bert = new BertModel(config, addPoolingLayer: false);
        cls = new BertOnlyMLMHead(config, bert.WordEmbeddings);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["cls."];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        [("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"), ("cls.predictions.decoder.bias", "cls.predictions.bias")];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        bert.call(inputIds, attentionMask, tokenTypeIds);

    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) => cls.call(hidden);
}
