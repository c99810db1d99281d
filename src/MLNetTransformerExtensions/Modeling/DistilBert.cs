// Mirrors HuggingFace transformers' models/distilbert/modeling_distilbert.py.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>Word + position embeddings (no token types), LayerNorm, dropout, as DistilBERT's Embeddings.</summary>
internal sealed class DistilBertEmbeddings : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Creates the embeddings.</summary>
    /// <param name="config">A DistilBERT config.</param>
    public DistilBertEmbeddings(TransformerConfig config) : base(nameof(DistilBertEmbeddings))
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PadTokenId ?? 0);
        position_embeddings = nn.Embedding(config.MaxPositions, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>The word-embedding matrix (vocab, H).</summary>
    public Parameter WordEmbeddings => word_embeddings.weight!;

    /// <summary>Fixed sinusoidal positions (DistilBERT's <c>sinusoidal_pos_embds</c>), written into the table.</summary>
    public void UseSinusoidalPositions()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var table = position_embeddings.weight!;
        var (positions, dim) = (table.shape[0], table.shape[1]);
        // angle[p, j] = p / 10000^(2*(j//2)/dim); even columns sin, odd columns cos.
        var position = arange(positions, dtype: ScalarType.Float64).unsqueeze(1);
        var pairIndex = arange(dim, dtype: ScalarType.Int64).div(2, rounding_mode: RoundingMode.floor).to(ScalarType.Float64);
        var angle = position / pow(10000.0, pairIndex.mul(2.0 / dim)).unsqueeze(0);
        var values = angle.clone();
        values[.., TensorIndex.Slice(0, null, 2)] = angle[.., TensorIndex.Slice(0, null, 2)].sin();
        values[.., TensorIndex.Slice(1, null, 2)] = angle[.., TensorIndex.Slice(1, null, 2)].cos();
        table.copy_(values.to(table.dtype));
        table.requires_grad_(false);
    }

    /// <summary>Embeds token ids.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        // Positions count real tokens, so left padding leaves a row's outputs unchanged (as in BertEmbeddings).
        var positions = attentionMask.cumsum(1).sub(1).clamp_min(0);
        return dropout.call(LayerNorm.call(word_embeddings.call(inputIds) + position_embeddings.call(positions)));
    }
}

/// <summary>Multi-head self-attention with q_lin/k_lin/v_lin/out_lin, as DistilBERT's MultiHeadSelfAttention.</summary>
internal sealed class DistilBertSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear q_lin;
    private readonly Linear k_lin;
    private readonly Linear v_lin;
    private readonly Linear out_lin;
    private readonly int heads;
    private readonly int headDim;
    private readonly double attentionDropout;

    /// <summary>Creates the projections.</summary>
    /// <param name="config">The config.</param>
    public DistilBertSelfAttention(TransformerConfig config) : base(nameof(DistilBertSelfAttention))
    {
        heads = config.NumHeads;
        headDim = config.HeadDim;
        attentionDropout = config.AttentionDropout;
        q_lin = nn.Linear(config.HiddenSize, config.HiddenSize);
        k_lin = nn.Linear(config.HiddenSize, config.HiddenSize);
        v_lin = nn.Linear(config.HiddenSize, config.HiddenSize);
        out_lin = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>Attends over the sequence and projects back.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask (B, 1, 1, T), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        // (B, T, H) -> (B, nh, T, hs)
        Tensor Split(Tensor x) => x.view(batch, length, heads, headDim).transpose(1, 2);
        var context = Layers.Attend(Split(q_lin.call(hidden)), Split(k_lin.call(hidden)), Split(v_lin.call(hidden)),
            mask, training ? attentionDropout : 0.0, causal: false);
        // (B, nh, T, hs) -> (B, T, H)
        return out_lin.call(context.transpose(1, 2).reshape(batch, length, heads * headDim));
    }
}

/// <summary>lin1 → activation → lin2 → dropout, as DistilBERT's FFN.</summary>
internal sealed class DistilBertFeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Linear lin1;
    private readonly Linear lin2;
    private readonly Dropout dropout;
    private readonly Activation activation;

    /// <summary>Creates the block.</summary>
    /// <param name="config">The config.</param>
    public DistilBertFeedForward(TransformerConfig config) : base(nameof(DistilBertFeedForward))
    {
        lin1 = nn.Linear(config.HiddenSize, config.IntermediateSize);
        lin2 = nn.Linear(config.IntermediateSize, config.HiddenSize);
        dropout = nn.Dropout(config.HiddenDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>dropout(lin2(act(lin1(x)))).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden) => dropout.call(lin2.call(Layers.Activate(lin1.call(hidden), activation)));
}

/// <summary>One post-LN layer, as DistilBERT's TransformerBlock.</summary>
internal sealed class DistilBertBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly DistilBertSelfAttention attention;
    private readonly LayerNorm sa_layer_norm;
    private readonly DistilBertFeedForward ffn;
    private readonly LayerNorm output_layer_norm;
    private readonly Dropout dropout;

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The config.</param>
    public DistilBertBlock(TransformerConfig config) : base(nameof(DistilBertBlock))
    {
        attention = new DistilBertSelfAttention(config);
        sa_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        ffn = new DistilBertFeedForward(config);
        output_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>Attention then feed-forward, each with its residual and LayerNorm.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var attended = sa_layer_norm.call(attention.call(hidden, mask) + hidden);
        return output_layer_norm.call(ffn.call(attended) + attended);
    }
}

/// <summary>The stack of layers, as DistilBERT's Transformer (<c>transformer.layer.N</c>).</summary>
internal sealed class DistilBertTransformer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ModuleList<DistilBertBlock> layer;

    /// <summary>Creates the stack.</summary>
    /// <param name="config">The config.</param>
    public DistilBertTransformer(TransformerConfig config) : base(nameof(DistilBertTransformer))
    {
        layer = nn.ModuleList([.. Enumerable.Range(0, config.NumLayers).Select(_ => new DistilBertBlock(config))]);
        RegisterComponents();
    }

    /// <summary>Runs every layer.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        foreach (var block in layer)
        {
            hidden = block.call(hidden, mask);
        }

        return hidden;
    }
}

/// <summary>The bare encoder, as DistilBertModel.</summary>
internal sealed class DistilBertModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly DistilBertEmbeddings embeddings;
    private readonly DistilBertTransformer transformer;

    /// <summary>Creates the body.</summary>
    /// <param name="config">A DistilBERT config.</param>
    public DistilBertModel(TransformerConfig config) : base(nameof(DistilBertModel))
    {
        embeddings = new DistilBertEmbeddings(config);
        transformer = new DistilBertTransformer(config);
        RegisterComponents();
    }

    /// <summary>The word-embedding matrix (vocab, H).</summary>
    public Parameter WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>Switches the position table to fixed sinusoids (for models trained from scratch with that option).</summary>
    public void UseSinusoidalPositions() => embeddings.UseSinusoidalPositions();

    /// <summary>Final hidden states.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        var hidden = embeddings.call(inputIds, attentionMask);
        return transformer.call(hidden, Layers.EncoderAttentionMask(attentionMask, hidden.dtype));
    }
}

/// <summary>first token → pre_classifier → ReLU → dropout → classifier, as DistilBertForSequenceClassification.</summary>
internal sealed class DistilBertForSequenceClassification : SequenceClassificationModel
{
    private readonly DistilBertModel distilbert;
    private readonly Linear pre_classifier;
    private readonly Linear classifier;
    private readonly Dropout dropout;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A DistilBERT config.</param>
    public DistilBertForSequenceClassification(TransformerConfig config) : base(nameof(DistilBertForSequenceClassification), config)
    {
        distilbert = new DistilBertModel(config);
        pre_classifier = nn.Linear(config.HiddenSize, config.HiddenSize);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        dropout = nn.Dropout(config.ClassifierDropout);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
        if (config.SinusoidalPositions)
        {
            distilbert.UseSinusoidalPositions();
        }
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["pre_classifier.", "classifier."];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        distilbert.call(inputIds, attentionMask);

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var first = Layers.FirstToken(distilbert.call(inputIds, attentionMask), attentionMask);
        return classifier.call(dropout.call(nn.functional.relu(pre_classifier.call(first))));
    }
}

/// <summary>The encoder with vocab_transform → act → vocab_layer_norm → tied vocab_projector, as DistilBertForMaskedLM.</summary>
internal sealed class DistilBertForMaskedLM : LanguageModel
{
    private readonly DistilBertModel distilbert;
    private readonly Linear vocab_transform;
    private readonly LayerNorm vocab_layer_norm;
    private readonly VocabProjector vocab_projector;
    private readonly Activation activation;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A DistilBERT config.</param>
    public DistilBertForMaskedLM(TransformerConfig config) : base(nameof(DistilBertForMaskedLM), config)
    {
        distilbert = new DistilBertModel(config);
        vocab_transform = nn.Linear(config.HiddenSize, config.HiddenSize);
        vocab_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        vocab_projector = new VocabProjector(config.VocabSize, distilbert.WordEmbeddings);
        activation = config.HiddenAct;
        RegisterComponents();
        Layers.InitializeWeights(this, config);
        if (config.SinusoidalPositions)
        {
            distilbert.UseSinusoidalPositions();
        }
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["vocab_transform.", "vocab_layer_norm.", "vocab_projector."];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        [("vocab_projector.weight", "distilbert.embeddings.word_embeddings.weight")];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        distilbert.call(inputIds, attentionMask);

    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) =>
        vocab_projector.call(vocab_layer_norm.call(Layers.Activate(vocab_transform.call(hidden), activation)));

    /// <summary>A projection onto the vocabulary whose weight is the shared embedding matrix; only its bias is its own.</summary>
    private sealed class VocabProjector : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter bias;
        private readonly Parameter weightSource;

        public VocabProjector(int vocabSize, Parameter wordEmbeddings) : base(nameof(VocabProjector))
        {
            bias = new Parameter(zeros(vocabSize));
            RegisterComponents();
            weightSource = wordEmbeddings;
        }

        public override Tensor forward(Tensor hidden) => nn.functional.linear(hidden, weightSource, bias);

        /// <summary>Releases this handle on the shared embedding matrix (the embedding keeps its own).</summary>
        /// <param name="disposing">Whether managed resources are released.</param>
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                weightSource.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
