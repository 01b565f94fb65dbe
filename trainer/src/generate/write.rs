//! Generating into a store: customers and events in groups, and the optional retention campaign with its control group.

use super::*;

/// Generates `options.customers` customers and their histories into `store`.
pub fn generate(store: &Store, options: &GenerateOptions) -> anyhow::Result<GenerateSummary> {
    generate_with_campaign(store, options, None)
}

/// [`generate`], playing out `campaign` when given (see the module documentation) and
/// storing it with its members.
pub fn generate_with_campaign(
    store: &Store,
    options: &GenerateOptions,
    campaign: Option<&CampaignOptions>,
) -> anyhow::Result<GenerateSummary> {
    let started = Instant::now();
    let now = now_micros();
    if options.customers == 0 {
        bail!("--customers must be at least 1");
    }
    if options.end > now {
        bail!(
            "the window's end ({}) is in the future: pick an end no later than today",
            show_time(options.end)
        );
    }
    let mut generator = Generator::new(options.seed, options.start, options.end)?;
    if let Some(c) = campaign {
        generator = generator.with_campaign(c)?;
    }

    // Generated comments are analysed with the built-in lexicons: the text model is
    // trained on them afterwards.
    let import = ImportOptions {
        progress: options.progress,
        text: None,
    };
    let bar = progress_bar(&import, options.customers, "generate", false);
    let mut summary = GenerateSummary {
        seed: options.seed,
        start: options.start,
        end: options.end,
        customers: 0,
        contractual: 0,
        churned: 0,
        churned_contractual: 0,
        events: 0,
        transactions: 0,
        payments: 0,
        feedback: 0,
        interactions: 0,
        customer_writes: CustomerCounts::default(),
        event_writes: EventCounts::default(),
        rejected: 0,
        seconds: 0.0,
        campaign: None,
    };
    // Campaign members by customer number (true: control), and the tally.
    let mut members: Vec<(u64, bool)> = Vec::new();
    let (mut reached, mut saved) = (0_u64, 0_u64);
    let mut events = EventSink::new(store, &import, now, bar.clone());
    let mut ordinal: u64 = 0;
    let mut first = 1;
    while first <= options.customers {
        let last = first
            .saturating_add(CUSTOMER_GROUP - 1)
            .min(options.customers);
        // 1. The group's customer rows (the simulation's events are dropped here).
        let mut customers = CustomerSink::new(store, now, ProgressBar::hidden());
        for n in first..=last {
            let life = generator.simulate(n, &mut |_| {});
            summary.customers += 1;
            summary.contractual += u64::from(life.data.contractual);
            summary.churned += u64::from(life.churn.is_some());
            summary.churned_contractual += u64::from(life.churn.is_some() && life.data.contractual);
            if let Some(role) = life.campaign {
                members.push((n, role.control));
                reached += u64::from(role.action.is_some());
                saved += u64::from(role.saved);
            }
            customers.push(n, life.data)?;
        }
        let (counts, _) = customers.finish()?;
        let w = &mut summary.customer_writes;
        w.read += counts.read;
        w.created += counts.created;
        w.updated += counts.updated;
        w.unchanged += counts.unchanged;
        w.rejected += counts.rejected;
        w.seconds += counts.seconds;

        // 2. Their events, from the same random streams.
        let mut buffer = Vec::new();
        for n in first..=last {
            generator.simulate(n, &mut |e| buffer.push(e));
            for e in buffer.drain(..) {
                ordinal += 1;
                match e.payload.kind() {
                    EventKind::Transaction => summary.transactions += 1,
                    EventKind::Payment => summary.payments += 1,
                    EventKind::Feedback => summary.feedback += 1,
                    EventKind::Interaction => summary.interactions += 1,
                    // Only the campaign's calls, counted as `reached`.
                    EventKind::RetentionAction => {}
                }
                events.push(ordinal, e)?;
            }
            bar.inc(1);
        }
        first = last.saturating_add(1);
        if last == u64::MAX {
            break;
        }
    }
    let (counts, _) = events.finish()?;
    bar.finish_and_clear();
    summary.events = ordinal;
    summary.rejected = summary.customer_writes.rejected + counts.rejected;
    summary.event_writes = counts;
    if let (Some(c), Some(plan)) = (campaign, &generator.campaign) {
        let stored = store_campaign(store, &generator, plan, &members)?;
        let control = members.iter().filter(|(_, control)| *control).count() as u64;
        summary.campaign = Some(CampaignSummary {
            name: c.name.clone(),
            draw_time: plan.draw_time,
            horizon_days: c.horizon_days,
            holdout_share: c.holdout_share,
            effect: c.effect,
            members: members.len() as u64,
            treated: members.len() as u64 - control,
            control,
            reached,
            saved,
            // `0.0 - x`, not `-x`: no effect reads 0, not -0.
            true_effect: if reached == 0 {
                0.0
            } else {
                0.0 - saved as f64 / reached as f64
            },
            stored,
        });
    }
    summary.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        customers = summary.customers,
        events = summary.events,
        rejected = summary.rejected,
        seconds = summary.seconds,
        "generated"
    );
    Ok(summary)
}

/// Stores the generated campaign with its members (true: stored now; false: the same
/// campaign was stored already).
pub(super) fn store_campaign(
    store: &Store,
    generator: &Generator,
    plan: &CampaignPlan,
    members: &[(u64, bool)],
) -> anyhow::Result<bool> {
    let new = NewCampaign {
        name: plan.name.clone(),
        action_kind: CAMPAIGN_ACTION_KIND.to_owned(),
        target: TargetRule::default(),
        holdout_share: plan.holdout_share,
        seed: generator.seed,
        horizon_days: plan.horizon_days,
    };
    let control = members.iter().filter(|(_, control)| *control).count() as i64;
    let same = |c: &vitals_store::CampaignRecord| {
        c.action_kind == new.action_kind
            && c.target == new.target
            && c.holdout_share == new.holdout_share
            && c.seed == new.seed
            && c.horizon_days == new.horizon_days
            && c.draw_time == plan.draw_time
            && c.control_count == control
            && c.treated_count == members.len() as i64 - control
    };
    let taken = |c: &vitals_store::CampaignRecord| {
        anyhow::anyhow!(
            "a campaign named {:?} exists already, drawn {} with {} treated and {} held out: \
             use another --campaign name, or generate into a fresh database",
            c.name,
            show_time(c.draw_time),
            c.treated_count,
            c.control_count
        )
    };
    if let Some(existing) = store.get_campaign(&new.name)? {
        return if same(&existing) {
            Ok(false)
        } else {
            Err(taken(&existing))
        };
    }
    let external_ids: Vec<String> = members
        .iter()
        .map(|(n, _)| generator.external_id(*n))
        .collect();
    let ids = store.customer_ids_by_external_id(&external_ids)?;
    let mut drawn = Vec::with_capacity(members.len());
    for ((_, control), external_id) in members.iter().zip(&external_ids) {
        let Some(id) = ids.get(external_id) else {
            bail!(
                "campaign member {external_id} is not stored (its row was rejected): \
                 generate into a fresh database or use another seed"
            );
        };
        drawn.push(CampaignMember {
            customer_id: id.clone(),
            control: *control,
            churn_probability: None,
        });
    }
    match store.insert_drawn_campaign(&new, plan.draw_time, CAMPAIGN_ACTOR, &drawn) {
        Ok(record) => {
            tracing::info!(
                campaign = %record.name,
                treated = record.treated_count,
                control = record.control_count,
                "campaign stored"
            );
            Ok(true)
        }
        // Stored meanwhile by a concurrent run.
        Err(StoreError::AlreadyExists(_)) => match store.get_campaign(&new.name)? {
            Some(existing) if same(&existing) => Ok(false),
            Some(existing) => Err(taken(&existing)),
            None => bail!("campaign {:?} could not be stored", new.name),
        },
        Err(e) => Err(e.into()),
    }
}
